require ["fileinto"];
if header :contains "subject" "Réunion"
{
	fileinto "Équipe";
}
if address :all :is "from" "chloe@example.fr"
{
	fileinto "Chloé";
}
