require ["fileinto"];
# rule:[Not for me]
if not address :is ["to","cc"] "user@example.com"
{
	fileinto "NotDirect";
}
