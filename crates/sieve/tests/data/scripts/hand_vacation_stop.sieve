require ["vacation","fileinto"];
if header :contains "x-spam-flag" "YES"
{
	fileinto "Junk";
	stop;
}
vacation "I'm away.";
