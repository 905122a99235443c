require ["body", "fileinto", "variables"];
if body :text :contains "Dear customer"
{
	fileinto "Customer";
}
if body :text :matches "*Release 1.?*"
{
	fileinto "Release";
}
if body :raw :contains "=C3=A0"
{
	fileinto "QuotedPrintable";
}
if body :text :contains "réunion"
{
	fileinto "Decoded";
}
