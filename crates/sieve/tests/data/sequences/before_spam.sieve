require ["fileinto"];
# Global: spam to Junk before the user's own rules.
if header :contains "x-spam-flag" "YES"
{
	fileinto "Junk";
	stop;
}
