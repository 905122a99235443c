# rule:[Forward invoices]
if header :contains "subject" "invoice"
{
	redirect "accounting@example.net";
}
