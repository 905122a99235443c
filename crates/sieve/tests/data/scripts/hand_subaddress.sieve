require ["envelope","subaddress","fileinto","variables"];
if envelope :detail "to" "*"
{
	set :lower "folder" "${1}";
	if string :is "${folder}" ""
	{
		keep;
	}
	else
	{
		fileinto "plus/${folder}";
	}
}
