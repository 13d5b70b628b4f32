using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;
using QubesWeb.Data;

namespace QubesWeb.Migrations;

/// <summary>Lets <c>dotnet ef</c> build the context from this project alone, without starting the web app.</summary>
public sealed class DesignTimeFactory : IDesignTimeDbContextFactory<InventoryDbContext>
{
    public InventoryDbContext CreateDbContext(string[] args)
    {
        var options = new DbContextOptionsBuilder<InventoryDbContext>();
        DataExtensions.Configure(options, Path.Combine(Path.GetTempPath(), "qubesweb-design.db"));
        return new InventoryDbContext(options.Options);
    }
}
