// The first-boot card of a qube's page, rendered with bUnit over the real inventory and queries (the hypervisor is the
// in-memory fake): what a qube of a cloud-init family is told at first boot, and no card for a qube of another family.
using QubesWeb.Data.Qubes;
using QubeDetailPage = QubesWeb.Components.Pages.Qubes.QubeDetail;

namespace QubesWeb.ComponentTests;

public sealed class QubeFirstBootTests : ConsoleTestContext
{
    private IRenderedComponent<QubeDetailPage> RenderPage(string name)
    {
        RenderProviders();
        var cut = Render<QubeDetailPage>(p => p.Add(x => x.Name, name));
        cut.WaitForAssertion(() => Assert.Single(cut.FindAll("#qube-title")), Wait);
        return cut;
    }

    [Fact]
    public async Task A_qube_of_a_cloud_init_family_shows_what_its_seed_tells_the_guest()
    {
        var dir = Path.Combine(PoolDir, "cloudy");
        await Inventory.CreateAsync(new NewQube("cloudy", QubeClass.StandaloneVM, "green",
            Features: new Dictionary<string, string> { ["os-distribution"] = "debian" },
            Volumes: [new NewVolume(VolumeKind.Private, Path.Combine(dir, "private.qcow2"), 2L << 30)]));
        await Estate.ReconcileAsync();

        var cut = RenderPage("cloudy");

        cut.WaitForAssertion(() => Assert.Equal("cloudy", cut.Find("#first-boot-hostname").TextContent.Trim()), Wait);
        Assert.Equal("user, no SSH key, no password (locked)", cut.Find("#first-boot-user").TextContent.Trim());
        Assert.Equal($"{Path.Combine(dir, "cidata.iso")}, written at its next start", cut.Find("#first-boot-seed").TextContent.Trim());
        Assert.Contains("\"hostname\": \"cloudy\"", cut.Find("#first-boot-user-data").TextContent);
        Assert.Equal("none (no netvm)", cut.Find("#first-boot-network").TextContent.Trim());
    }

    [Fact]
    public async Task A_networked_qube_shows_the_address_route_and_dns_its_seed_gives_its_interface()
    {
        await Inventory.CreateAsync(new NewQube("cloudy", QubeClass.StandaloneVM, "green", NetVm: "sys-net",
            Features: new Dictionary<string, string> { ["os-distribution"] = "fedora" },
            Volumes: [new NewVolume(VolumeKind.Private, Path.Combine(PoolDir, "cloudy", "private.qcow2"), 2L << 30)]));
        await Estate.ReconcileAsync();
        var cloudy = await Inventory.GetAsync("cloudy");
        var net = await Inventory.GetAsync("sys-net");

        var cut = RenderPage("cloudy");

        cut.WaitForAssertion(() => Assert.Equal(
            $"{cloudy.IpAddress}/32 via {net.IpAddress} (eth0, MAC {cloudy.MacAddress}), DNS 10.139.1.1, 10.139.1.2",
            cut.Find("#first-boot-network").TextContent.Trim()), Wait);
        // The file itself, as the guest reads it.
        var config = cut.Find("#first-boot-network-config").TextContent;
        Assert.Contains($"\"macaddress\": \"{cloudy.MacAddress}\"", config);
        Assert.Contains($"\"{cloudy.IpAddress}/32\"", config);
    }

    [Fact]
    public void A_qube_of_no_cloud_init_family_has_no_first_boot_card()
    {
        var cut = RenderPage("devbox");
        Assert.Empty(cut.FindAll("#qube-first-boot"));
    }
}
