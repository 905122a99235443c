require ["fileinto"];
if header :is :comparator "i;octet" "subject" "lunch tomorrow?"
{
	fileinto "Lower";
}
if header :is :comparator "i;ascii-casemap" "subject" "lunch tomorrow?"
{
	fileinto "Casemap";
}
