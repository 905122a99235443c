require ["fileinto", "relational"];
if address :all :contains ["to", "cc"] "example.fr"
{
	fileinto "French";
}
if address :localpart :is "from" ["alice", "MAILER-DAEMON", "orders"]
{
	fileinto "Known";
}
if address :domain :matches "sender" "lists.*"
{
	fileinto "ListSender";
}
if header :count "eq" "to" "2"
{
	fileinto "TwoToHeaders";
}
