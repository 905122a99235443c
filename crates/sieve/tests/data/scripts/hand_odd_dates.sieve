require ["date", "relational", "fileinto"];
# Pigeonhole accepts unknown zones and date parts at compile time.
if date :zone "CET" :value "ge" "date" "year" "2000"
{
	fileinto "OddZone";
}
if currentdate :is "fortnight" ""
{
	fileinto "Fortnight";
}
if date :value "ge" "date" "julian" "59000"
{
	fileinto "Julian";
}
