require ["fileinto"];
# rule:[Spam]
if header :contains "x-spam-flag" "YES"
{
	fileinto "Junk";
	stop;
}
