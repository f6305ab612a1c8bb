"""What the user does in the OAuth2 consent flow, shared by every client script: "Allow" on the stand-in's
consent page, and the browser follows the redirect to the function's /oauth2/callback."""
import urllib.parse
import urllib.request


def consent(url):
    """Clicks "Allow" at the authorization URL the turn streamed; fails naming what the browser saw."""
    with urllib.request.urlopen(url + "&decision=allow", timeout=30) as page:
        body = page.read().decode()
        if not (page.status == 200 and "You authorized" in body):
            raise SystemExit(f"consent: the callback page: {page.status} {body!r}")
        if urllib.parse.urlparse(page.url).path != "/oauth2/callback":
            raise SystemExit(f"consent: landed on {page.url}")
