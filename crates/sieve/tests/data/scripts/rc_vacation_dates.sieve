require ["date","relational","vacation"];
# rule:[Holidays]
if allof (currentdate :zone "+0000" :value "ge" "date" "2000-01-01", currentdate :zone "+0000" :value "le" "date" "2999-12-31")
{
	vacation :days 3 :subject "Away" "Back soon.";
}
