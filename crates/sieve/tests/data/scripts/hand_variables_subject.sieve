require ["variables","fileinto"];
if header :matches "subject" "[*] *"
{
	set :upperfirst "list" "${1}";
	fileinto "Lists.${list}";
	stop;
}
if header :matches "from" "* <*@*>"
{
	fileinto "From/${3}";
}
