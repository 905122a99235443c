require ["fileinto"];
# rule:[Spam level]
if header :contains "x-spam-status" "Yes"
{
	fileinto "Junk";
}
elsif header :contains "x-spam-score" "7."
{
	fileinto "Maybe";
}
