require ["vacation", "envelope", "variables", "fileinto", "copy", "mailbox"];
if envelope :matches "from" "*@*"
{
	set "domain" "${2}";
}
if not header :contains "subject" ["SPAM", "Undelivered"]
{
	vacation :days 2 :handle "away-${domain}" :subject "Re: away" "I am away, ${domain} friend.";
}
fileinto :copy :create "Seen-${domain}";
