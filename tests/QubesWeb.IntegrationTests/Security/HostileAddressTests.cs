// Hostile names and filters in the address, sent by a signed-in client to the real console (Kestrel, routing, the
// prerendered page): each is answered without a server error, any name is said as text ("There is no qube named"),
// no markup from the address reaches the page as markup, and nothing is written.
using System.Net;
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;

namespace QubesWeb.IntegrationTests.Security;

public sealed class HostileAddressTests
{
    private const string Script = "%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    private const string Img = "%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E";

    public static TheoryData<string, bool> Addresses => new()
    {
        // address, whether the page must answer (200) that there is no such qube (unless Kestrel refuses a NUL first)
        { "/qubes/..%2Fx", true },
        { "/qubes/%252e%252e%252f", true },
        { "/qubes/a%00b", true },
        { "/qubes/" + new string('a', 4000), true },
        { "/qubes/" + Script, true },
        { "/qubes/%E2%80%AEvault", true },
        { "/qubes/vault%00x", true },
        { "/templates/..%2Fx", true },
        { "/templates/" + Img, true },
        { "/templates/a%00b", true },
        { "/qubes?state=" + Script, false },
        { "/tasks?qube=" + Script + "&state=" + Img + "&state=" + new string('s', 4000), false },
        { "/create/standalone?source=" + Script + "&purpose=" + Img, false },
        { "/tasks/" + new string('9', 40), false },
    };

    [Theory]
    [MemberData(nameof(Addresses))]
    public async Task A_hostile_address_is_answered_as_text_without_a_server_error_and_writes_nothing(string address, bool saysNoSuchQube)
    {
        await using var host = await ConsoleHost.StartAsync();
        using var http = host.SignedInClient();
        var before = await StateAsync(host);

        using var response = await http.GetAsync(address);
        var body = await response.Content.ReadAsStringAsync();

        // Kestrel may refuse a NUL or an over-long segment outright; routing may find no page: neither is an error of ours.
        Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.BadRequest or HttpStatusCode.NotFound,
            $"{address[..Math.Min(60, address.Length)]}: {(int)response.StatusCode}");
        Assert.DoesNotContain("<script>alert", body, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<img src=x", body, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain('\0', body);
        Assert.DoesNotContain('\u202E', body);
        if (saysNoSuchQube && !address.Contains("%00"))
        {
            // Nothing to refuse at the HTTP level: the page itself answers, with the name as text.
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains("There is no qube named", body);
        }
        Assert.Equal(before, await StateAsync(host));
    }

    /// <summary>Jobs, qubes and the pool's folders: what a request must not change.</summary>
    private static async Task<string> StateAsync(ConsoleHost host)
    {
        await using var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync();
        var pool = host.PoolDir;
        var folders = Directory.EnumerateDirectories(pool, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal);
        return $"{await db.Jobs.CountAsync()}|{await db.Qubes.CountAsync()}|{string.Join(",", folders)}";
    }
}
