require ["relational","comparator-i;ascii-numeric","fileinto"];
if header :value "gt" :comparator "i;ascii-numeric" "x-priority" "0"
{
	if header :value "lt" :comparator "i;ascii-numeric" "x-priority" "3"
	{
		fileinto "Urgent";
	}
}
