require ["vacation","date","relational"];
# rule:[Vacation]
if allof (currentdate :zone "+0100" :value "ge" "iso8601" "2021-12-20T00:00:00+01:00", currentdate :zone "+0100" :value "le" "iso8601" "2099-01-05T23:59:59+01:00")
{
	vacation :days 1 :subject "Out of office" :from "\"User Name\" <user@example.com>" "I am away until January.";
}
