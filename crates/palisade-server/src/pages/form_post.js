// The form-post response mode: send the answer to the application at once.
document.getElementById("response").submit();
