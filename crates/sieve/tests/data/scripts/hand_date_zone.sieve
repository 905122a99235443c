require ["date","fileinto","variables"];
if date :matches :zone "-0800" "date" "date" "*"
{
	fileinto "Pacific/${1}";
}
