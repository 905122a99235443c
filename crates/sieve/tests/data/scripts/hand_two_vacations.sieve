require ["vacation"];
if header :contains "subject" "Lunch"
{
	vacation :handle "one" "first";
	vacation :handle "two" "second";
}
