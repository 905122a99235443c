require ["body","fileinto"];
# rule:[Body words]
if body :text :contains "invoice"
{
	fileinto "Invoices";
}
elsif body :contains ["lunch", "christmas"]
{
	fileinto "Social";
}
