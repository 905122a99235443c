require ["fileinto","copy","mailbox"];
# rule:[Archive copy]
if true
{
	fileinto :copy :create "Archive";
}
# rule:[Shop]
if address :domain :is "from" ["shop.example", "store.example"]
{
	fileinto "Shopping";
	stop;
}
