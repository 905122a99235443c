require ["editheader","fileinto"];
addheader "X-Filtered" "yes";
deleteheader :contains "subject" "SPAM";
if header :is "x-filtered" "yes"
{
	fileinto "Edited";
}
if not exists "subject"
{
	fileinto "NoSubject";
}
