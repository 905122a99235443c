require ["body","fileinto"];
if body :content "text/html" :contains "<b>invoice</b>"
{
	fileinto "Html";
}
if body :raw :contains "JVBERi0"
{
	fileinto "RawPdf";
}
if body :content "application/pdf" :contains "PDF"
{
	fileinto "Pdf";
}
