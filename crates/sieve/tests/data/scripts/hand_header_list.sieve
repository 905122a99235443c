require ["fileinto"];
if header :contains ["from","sender","reply-to"] ["bob@", "dev-bounces"]
{
	fileinto "Bob";
}
if exists "nonexistent"
{
	fileinto "Never";
}
if header :contains "nonexistent" ""
{
	fileinto "NeverEither";
}
