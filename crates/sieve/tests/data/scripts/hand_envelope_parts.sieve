require ["envelope", "subaddress", "fileinto", "variables"];
if envelope :user "to" "user"
{
	if envelope :detail :matches "to" "*"
	{
		fileinto "Detail-${1}";
	}
	else
	{
		fileinto "NoDetail";
	}
}
if envelope :domain :is "from" ["example.org", "example.net"]
{
	fileinto "KnownSender";
}
if envelope :localpart :matches "from" "*-*"
{
	fileinto "Dash-${1}";
}
