require ["date","relational","fileinto"];
if currentdate :value "ge" "year" "2020"
{
	fileinto "Recent";
}
if currentdate :value "lt" "year" "2000"
{
	fileinto "Ancient";
}
