require ["relational","comparator-i;ascii-numeric","fileinto"];
if header :value "ge" :comparator "i;ascii-numeric" "x-spam-score" "5"
{
	fileinto "Junk";
}
elsif header :count "ge" :comparator "i;ascii-numeric" "received" "3"
{
	fileinto "ManyHops";
}
elsif address :count "ge" :comparator "i;ascii-numeric" ["to","cc"] "2"
{
	fileinto "Group";
}
