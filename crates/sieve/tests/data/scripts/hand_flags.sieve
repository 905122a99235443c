require ["imap4flags","fileinto"];
setflag "\\Seen";
addflag ["\\Flagged", "$Work"];
removeflag "\\Seen";
if hasflag :contains "work"
{
	fileinto "Work";
}
