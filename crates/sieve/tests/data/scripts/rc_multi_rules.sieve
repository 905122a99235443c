require ["fileinto","imap4flags"];
# rule:[Lists]
if anyof (header :contains "list-id" "dev.lists.example.org", header :contains "subject" "[dev]")
{
	fileinto "Lists/dev";
	stop;
}
# rule:[Invoices]
if allof (header :contains "from" "billing@", header :contains "subject" "invoice")
{
	addflag "$Invoice";
	fileinto "Finance";
}
# rule:[Family]
if address :domain :is "from" "home.example"
{
	fileinto :flags ["\\Flagged"] "Family";
	stop;
}
