require ["regex","fileinto"];
# rule:[Ticket numbers]
if header :regex "subject" "#[0-9]{4}-[0-9]+"
{
	fileinto "Tickets";
}
elsif header :regex "subject" "^\\[[a-z]+\\]"
{
	fileinto "Tagged";
}
