require ["envelope","fileinto"];
if envelope :is "from" ""
{
	fileinto "NullSender";
}
elsif envelope :localpart :matches "from" "*-bounces"
{
	fileinto "ListBounces";
}
elsif envelope :all :contains "to" "+"
{
	fileinto "Plus";
}
