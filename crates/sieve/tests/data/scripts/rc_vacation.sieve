require ["vacation"];
# rule:[Out of office]
if true
{
	vacation :days 7 :addresses ["user@example.com"] :subject "Out of office" :from "user@example.com" "I am away until Monday, 10 January. Your mail will be read on my return.";
}
