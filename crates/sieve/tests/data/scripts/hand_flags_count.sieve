require ["imap4flags", "relational", "comparator-i;ascii-numeric", "fileinto"];
addflag ["\\Seen", "$Later"];
if hasflag :count "ge" :comparator "i;ascii-numeric" "2"
{
	fileinto "TwoFlags";
}
if header :count "eq" :comparator "i;ascii-numeric" "x-spam-flag" "1"
{
	removeflag "$Later";
}
