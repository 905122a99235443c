require ["variables", "fileinto"];
set "folder" "FromBefore";
if header :contains "subject" "Lunch"
{
	fileinto "Lunch";
}
