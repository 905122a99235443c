require ["variables"];
set "to" "Forward Box <forward@example.net>";
if header :contains "subject" "invoice"
{
	redirect "${to}";
}
redirect "<archive@example.net>";
