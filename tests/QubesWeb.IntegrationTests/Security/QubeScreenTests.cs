// A running qube's screen as a picture (/qubes/NAME/screen), for the dashboard's small live screens: behind the
// sign-in door, never cached, a PNG for a running qube; a plain sentence for anything else. In the demo, libvirt's
// test driver draws its own test picture (the dashboard says so); the real lane reads a real guest's screen.
using System.Net;

namespace QubesWeb.IntegrationTests.Security;

public sealed class QubeScreenTests
{
    private static readonly byte[] PngSignature = [137, 80, 78, 71, 13, 10, 26, 10];

    [Fact]
    public async Task A_running_qubes_screen_is_a_png_never_cached_and_only_for_a_signed_in_session()
    {
        await using var host = await ConsoleHost.StartAsync();
        using var signedIn = host.SignedInClient();

        using var picture = await signedIn.GetAsync("/qubes/work/screen");

        Assert.Equal(HttpStatusCode.OK, picture.StatusCode);
        Assert.Equal("image/png", picture.Content.Headers.ContentType?.MediaType);
        Assert.Contains("no-store", picture.Headers.CacheControl?.ToString());
        var bytes = await picture.Content.ReadAsByteArrayAsync();
        Assert.True(bytes.Length > 100 && bytes.AsSpan(0, 8).SequenceEqual(PngSignature), $"{bytes.Length} bytes, not a PNG");

        using var anonymous = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(host.BaseUrl) };
        using var refused = await anonymous.GetAsync("/qubes/work/screen");
        Assert.NotEqual(HttpStatusCode.OK, refused.StatusCode);
        Assert.NotEqual("image/png", refused.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task A_halted_qube_dom0_an_unknown_qube_and_a_bad_name_have_no_screen_and_are_told_why()
    {
        await using var host = await ConsoleHost.StartAsync();
        using var signedIn = host.SignedInClient();
        foreach (var (name, says) in new[]
                 {
                     ("vault", "vault is not running, so it shows no screen."),
                     ("dom0", "There is no such qube with a screen."),
                     ("nosuchqube", "There is no such qube with a screen."),
                     ("%24(id)", "That is not a qube's name."),
                     ("a%2Fb", "That is not a qube's name."),
                 })
        {
            using var answer = await signedIn.GetAsync($"/qubes/{name}/screen");
            Assert.True(answer.StatusCode == HttpStatusCode.NotFound, $"{name}: {answer.StatusCode}");
            Assert.Equal("text/plain", answer.Content.Headers.ContentType?.MediaType);
            Assert.Equal(says, await answer.Content.ReadAsStringAsync());
        }
    }
}
