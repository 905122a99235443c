require ["fileinto"];
if header :contains "subject" "***SPAM***"
{
	fileinto "StarredSpam";
}
if header :matches "subject" "\\*\\*\\**"
{
	fileinto "Escaped";
}
