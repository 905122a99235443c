require ["mailbox","fileinto"];
if mailboxexists "INBOX"
{
	fileinto :create "Archive/2021";
}
if mailboxexists "DoesNotExist"
{
	fileinto "Never";
}
