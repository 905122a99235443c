require ["fileinto"];
# rule:[No message id]
if not exists "message-id"
{
	fileinto "Suspicious";
}
# rule:[Missing date]
if not exists ["date", "x-nothing"]
{
	fileinto "Partial";
}
