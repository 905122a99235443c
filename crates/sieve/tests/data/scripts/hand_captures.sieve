require ["variables", "fileinto"];
if header :matches "subject" "*e*"
{
	fileinto "Cap/${1}/${2}";
}
if header :matches "from" "*@*.*"
{
	fileinto "Dom/${2}/${3}";
}
if header :matches "message-id" "<*>"
{
	set "id" "${0}";
	if string :matches "${id}" "<*.*"
	{
		fileinto "Id/${1}";
	}
}
