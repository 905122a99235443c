require ["regex","variables","fileinto"];
if header :regex "subject" "invoice #([0-9]+)-([0-9]+)"
{
	fileinto "Invoices/${1}/${2}";
}
elsif address :regex :domain "from" "^(.*)\\.example$"
{
	fileinto "Shops/${1}";
}
