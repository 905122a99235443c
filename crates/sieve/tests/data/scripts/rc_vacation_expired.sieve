require ["date","relational","vacation"];
# rule:[Old holiday]
if allof (currentdate :value "ge" "date" "2019-07-01", currentdate :value "le" "date" "2019-07-15")
{
	vacation :days 1 "On holiday in July 2019.";
}
