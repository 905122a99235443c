require ["fileinto", "copy"];
if header :contains "subject" ["Lunch", "Release"]
{
	redirect :copy "friend@example.net";
	discard;
}
elsif size :over 1K
{
	keep;
	discard;
}
