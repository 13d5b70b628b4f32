// The qube page's addresses: its own IP and MAC from the inventory, and its netvm's address as its gateway.
using QubeDetailPage = QubesWeb.Components.Pages.Qubes.QubeDetail;

namespace QubesWeb.ComponentTests;

public sealed class QubeAddressesTests : ConsoleTestContext
{
    private IRenderedComponent<QubeDetailPage> RenderPage(string name)
    {
        RenderProviders();
        var cut = Render<QubeDetailPage>(p => p.Add(x => x.Name, name));
        cut.WaitForAssertion(() => Assert.Single(cut.FindAll("#qube-addresses")), Wait);
        return cut;
    }

    private static string Text(IRenderedComponent<QubeDetailPage> cut, string id) => cut.Find(id).TextContent.Trim();

    [Fact]
    public async Task A_client_shows_its_address_mac_and_its_netvms_address_as_gateway()
    {
        var work = await Inventory.GetAsync("work");
        var sysNet = await Inventory.GetAsync("sys-net");
        var cut = RenderPage("work");

        Assert.Equal(work.IpAddress, Text(cut, "#qube-ip"));
        Assert.Equal(work.MacAddress, Text(cut, "#qube-mac"));
        Assert.Equal($"{sysNet.IpAddress} (sys-net)", Text(cut, "#qube-gateway"));
        Assert.Equal("10.139.1.1 10.139.1.2", Text(cut, "#qube-dns"));
        Assert.StartsWith("10.137.0.", work.IpAddress);
    }

    [Fact]
    public async Task A_qube_without_netvm_keeps_its_address_and_has_no_gateway()
    {
        var vault = await Inventory.GetAsync("vault");
        var cut = RenderPage("vault");

        Assert.Equal(vault.IpAddress, Text(cut, "#qube-ip"));
        Assert.Equal("none: no netvm", Text(cut, "#qube-gateway"));
        Assert.Empty(cut.FindAll("#qube-dns"));
    }
}
