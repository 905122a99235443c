require ["date","relational","fileinto"];
if date :value "ge" :originalzone "date" "hour" "09"
{
	if date :is :originalzone "date" "weekday" ["0","6"]
	{
		fileinto "Weekend";
	}
	else
	{
		fileinto "Workday";
	}
}
elsif date :is :zone "+0000" "date" "year" "2021"
{
	fileinto "Early2021";
}
