require ["fileinto"];
if header :is "subject" "nothing matches this"
{
	fileinto "No";
}
elsif false
{
	fileinto "NoNo";
}
else
{
	keep;
	stop;
}
fileinto "Unreached";
