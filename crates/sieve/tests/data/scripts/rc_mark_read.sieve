require ["fileinto","imap4flags"];
# rule:[Newsletters read]
if anyof (header :contains "subject" "newsletter", header :contains "list-id" "lists.example.org")
{
	addflag "\\Seen";
	fileinto "Newsletters";
	stop;
}
# rule:[Flag family]
if header :contains "from" "home.example"
{
	setflag "\\Flagged";
}
