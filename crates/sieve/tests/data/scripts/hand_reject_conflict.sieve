require ["reject","fileinto"];
if header :contains "subject" "SPAM"
{
	fileinto "Junk";
	reject "No spam please";
}
