require ["fileinto"];
if header :matches "subject" "*?lunch*"
{
	fileinto "Lunch";
}
if header :matches "message-id" "<*@example.*>"
{
	fileinto "ExampleIds";
}
if header :matches "subject" "Order ????ped"
{
	fileinto "Shipped";
}
