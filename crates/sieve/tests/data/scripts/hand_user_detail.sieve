require ["subaddress","fileinto"];
if address :user "to" "user"
{
	if address :detail "to" "shopping"
	{
		fileinto "Shopping";
	}
}
