require ["imap4flags", "fileinto", "variables"];
setflag "\\Seen \\Answered";
if hasflag :is "\\seen"
{
	fileinto "SeenIs";
}
if hasflag :matches "\\*ed"
{
	fileinto "Matched";
}
set "v" "a b";
if hasflag :is "v" ["a", "c"]
{
	fileinto "VarFlag";
}
removeflag "\\Answered";
